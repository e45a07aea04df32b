{#- A raw table for a staging model's FROM, in place of source() (which it calls, so
    the lineage still shows the source). Any subset of sources builds the marts:

    - the table is there with every declared column: the table itself;
    - it lacks declared columns (a field the vendor has never sent; dlt creates no
      column for it): the table plus those columns as typed NULLs;
    - it is not there (the source is not configured, or has not loaded yet): an empty
      table of the declared columns, so its platform is simply absent from the marts.

    The declared columns and their SQL types come from var('raw_columns') (sources/
    catalog.py, passed by pipelines/dbt.py); the tables there and their columns from
    var('raw_present') (pipelines/dbt.py looks once, before dbt starts). Without it
    (dbt run by hand) the macro asks the adapter, whose relation cache can answer
    "absent" for a loaded table while another thread fills it: run by hand on a
    multi-threaded target, pass the var or --threads 1. Used without an alias of its own:
    `select * from {{ raw_table('fx', 'rates') }}`. -#}
{% macro raw_table(source_name, table_name) -%}
    {%- set relation = source(source_name, table_name) -%}
    {%- if not execute -%}
        {{- return(relation) -}}
    {%- endif -%}
    {%- set key = source_name ~ '.' ~ table_name -%}
    {%- set declared = var('raw_columns', {}).get(key, {}) -%}
    {%- set known = var('raw_present', none) -%}
    {%- if known is not none -%}
        {%- set present = known.get(key) -%}
    {%- else -%}
        {%- set existing = adapter.get_relation(database=relation.database, schema=relation.schema, identifier=relation.identifier) -%}
        {%- set present = none -%}
        {%- if existing is not none -%}
            {%- set present = adapter.get_columns_in_relation(existing) | map(attribute='name') | map('lower') | list -%}
        {%- endif -%}
    {%- endif -%}
    {%- if present is none -%}
        {%- if not declared -%}
            {{ exceptions.raise_compiler_error(
                "raw table " ~ key ~ " is not in the warehouse and no columns are declared for it"
                ~ " (var raw_columns, from sources/catalog.py)"
            ) }}
        {%- endif -%}
        {%- set columns = [] -%}
        {%- for name, data_type in declared.items() -%}
            {%- do columns.append("cast(null as " ~ data_type ~ ") as " ~ adapter.quote(name)) -%}
        {%- endfor -%}
        {{- return("(select " ~ columns | join(", ") ~ " where 1 = 0) as " ~ adapter.quote(table_name)) -}}
    {%- endif -%}
    {%- set nulls = [] -%}
    {%- for name, data_type in declared.items() if name | lower not in present -%}
        {%- do nulls.append("cast(null as " ~ data_type ~ ") as " ~ adapter.quote(name)) -%}
    {%- endfor -%}
    {%- if not nulls -%}
        {{- return(relation) -}}
    {%- endif -%}
    {{- return("(select *, " ~ nulls | join(", ") ~ " from " ~ relation ~ ") as " ~ adapter.quote(table_name)) -}}
{%- endmacro %}
