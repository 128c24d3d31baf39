{{
    config(
        materialized='incremental',
        unique_key='order_date',
        incremental_strategy='delete+insert',
        on_schema_change='append_new_columns'
    )
}}

-- Order statuses change for a few days after an order is placed (returns,
-- cancellations), so an incremental run rebuilds the last few days again.
{% set lookback_days = 3 %}

with orders as (
    select * from {{ ref('fct_orders') }}
    {% if is_incremental() %}
    where ordered_on >= (
        select cast(max(order_date) - interval {{ lookback_days }} day as date) from {{ this }}
    )
    {% endif %}
)

select
    ordered_on as order_date,
    count(*) as order_count,
    count(*) filter (where is_revenue) as revenue_order_count,
    coalesce(sum(units) filter (where is_revenue), 0) as units_sold,
    coalesce(sum(order_total) filter (where is_revenue), 0) as gross_revenue,
    round(
        {{ shop_utils.safe_divide(
            'sum(order_total) filter (where is_revenue)',
            'count(*) filter (where is_revenue)'
        ) }}, 2
    ) as average_order_value
from orders
group by ordered_on
