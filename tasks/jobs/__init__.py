"""Per-video and per-run jobs as plain functions (extract, plan, score, report, train, evaluate); the Prefect
@task wrappers around them live in flows/."""
