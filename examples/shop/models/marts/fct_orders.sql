with items as (
    select
        order_id,
        count(*) as line_count,
        sum(quantity) as units,
        sum(line_total_cents) as order_total_cents
    from {{ ref('stg_order_items') }}
    group by order_id
),

paid as (
    select
        order_id,
        count(*) as payment_count,
        sum(amount_cents) as amount_paid_cents
    from {{ ref('stg_payments') }}
    group by order_id
)

select
    orders.order_id,
    orders.customer_id,
    orders.ordered_on,
    orders.status,
    orders.is_revenue,
    coalesce(items.line_count, 0) as line_count,
    coalesce(items.units, 0) as units,
    {{ shop_utils.cents_to_currency('coalesce(items.order_total_cents, 0)') }} as order_total,
    coalesce(paid.payment_count, 0) as payment_count,
    {{ shop_utils.cents_to_currency('coalesce(paid.amount_paid_cents, 0)') }} as amount_paid
from {{ ref('stg_orders') }} as orders
left join items on items.order_id = orders.order_id
left join paid on paid.order_id = orders.order_id
