with order_stats as (
    select
        customer_id,
        min(ordered_on) as first_order_on,
        max(ordered_on) as last_order_on,
        count(*) as order_count,
        count(*) filter (where is_revenue) as revenue_order_count,
        coalesce(sum(order_total) filter (where is_revenue), 0) as lifetime_value
    from {{ ref('fct_orders') }}
    group by customer_id
)

select
    customers.customer_id,
    customers.full_name,
    customers.email,
    customers.country_code,
    customers.signed_up_on,
    order_stats.first_order_on,
    order_stats.last_order_on,
    coalesce(order_stats.order_count, 0) as order_count,
    coalesce(order_stats.lifetime_value, 0) as lifetime_value,
    round(
        {{ shop_utils.safe_divide('order_stats.lifetime_value', 'order_stats.revenue_order_count') }}, 2
    ) as average_order_value
from {{ ref('stg_customers') }} as customers
left join order_stats on order_stats.customer_id = customers.customer_id
