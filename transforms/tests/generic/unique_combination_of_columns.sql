{#- A model's grain: no two rows share these columns (dbt's own `unique` takes one
    column; dbt_utils has this test, but a package would need the internet at install). -#}
{% test unique_combination_of_columns(model, combination_of_columns) %}
select {{ combination_of_columns | join(", ") }}, count(*) as rows_per_key
from {{ model }}
group by {{ combination_of_columns | join(", ") }}
having count(*) > 1
{% endtest %}
