"""Ingestion: align scenes and labels on one grid, compute band statistics, write COGs and a catalog."""
