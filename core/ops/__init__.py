"""Operating Countersign: alert rules (``alerts``), scrape-time metrics, ``doctor``,
backup export and import, the settings report, production secret checks.
"""

__all__ = ["alerts", "backup", "doctor", "metrics", "production", "settings_report"]
