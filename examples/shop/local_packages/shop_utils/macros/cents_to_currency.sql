{#- Amounts are stored as integer cents; marts show them in the currency unit. -#}
{% macro cents_to_currency(column, scale=2) -%}
    cast(({{ column }}) / 100.0 as decimal(18, {{ scale }}))
{%- endmacro %}
