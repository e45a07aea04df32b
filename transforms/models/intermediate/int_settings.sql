-- The [transforms] settings as rows (key, value), so the models read configuration
-- as data: var('transforms'), whose defaults are in dbt_project.yml and whose
-- configured values pipelines/transform.py passes. A list gives one row per item.
-- A table (seeds.settings, as the settings always were), not a view: Postgres folds
-- the constants of a view into the query reading it, and would cast every value
-- before filtering on its key ('' is no integer).
{{ config(materialized='table', schema='seeds', alias='settings') }}
{%- set rows = [] -%}
{%- for key, value in var('transforms').items() -%}
    {%- set items = value if (value is iterable and value is not string and value is not mapping) else [value] -%}
    {%- for item in items -%}
        {%- do rows.append((key, '' if item is none else item | string)) -%}
    {%- endfor -%}
{%- endfor %}
{% for key, value in rows %}
select
    cast('{{ key }}' as varchar) as key,
    cast('{{ value | replace("'", "''") }}' as varchar) as value
{%- if not loop.last %}
union all
{%- endif %}
{%- endfor %}
