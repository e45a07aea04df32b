{#- A model's schema is its layer's name (staging, intermediate, marts, seeds), not dbt's
    default <target schema>_<custom schema>: dashboards and the serving file read
    marts.<name>, whatever the profile's schema. -#}
{% macro generate_schema_name(custom_schema_name, node) -%}
    {{ (custom_schema_name or target.schema) | trim }}
{%- endmacro %}
