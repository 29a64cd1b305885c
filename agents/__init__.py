"""Labeler agents: fixed policies, closed-form best responses, SB3 training and evaluation."""
