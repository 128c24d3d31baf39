select
    product_id,
    sku,
    product_name,
    category,
    brand,
    price_cents,
    {{ shop_utils.cents_to_currency('price_cents') }} as list_price,
    is_active,
    updated_at
from {{ ref('products') }}
