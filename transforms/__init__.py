"""The dbt project of the marts (dbt_project.yml, models/, seeds/, tests/, macros/);
pipelines/dbt.py builds it. Python only to locate it once installed."""

from pathlib import Path

TRANSFORMS_DIR = Path(__file__).parent
