select
    order_item_id,
    order_id,
    product_id,
    quantity,
    unit_price_cents,
    quantity * unit_price_cents as line_total_cents,
    {{ shop_utils.cents_to_currency('unit_price_cents') }} as unit_price,
    {{ shop_utils.cents_to_currency('quantity * unit_price_cents') }} as line_total
from {{ ref('order_items') }}
