"""The relay's HTTP face: ingest, admin API and health routes on one Starlette app."""
