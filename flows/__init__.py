"""Prefect flows of recording-index (importable as `recording_index_flows`)."""
