with sold as (
    select
        items.product_id,
        sum(items.quantity) as units_sold,
        sum(items.line_total) as revenue
    from {{ ref('stg_order_items') }} as items
    inner join {{ ref('stg_orders') }} as orders on orders.order_id = items.order_id
    where orders.is_revenue
    group by items.product_id
),

total as (
    select sum(revenue) as revenue from sold
)

select
    products.product_id,
    products.sku,
    products.product_name,
    products.category,
    products.brand,
    products.list_price,
    products.is_active,
    coalesce(sold.units_sold, 0) as units_sold,
    coalesce(sold.revenue, 0) as revenue,
    round(
        {{ shop_utils.safe_divide('coalesce(sold.revenue, 0)', 'total.revenue') }}, 4
    ) as revenue_share
from {{ ref('stg_products') }} as products
left join sold on sold.product_id = products.product_id
cross join total
