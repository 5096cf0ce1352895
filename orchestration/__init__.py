"""Dagster definitions, resources, schedules, sensors and the ``csw`` command line."""
