"""Prefect tasks and the plain functions behind them: discover, decode, features, storage, scoring, reports."""
