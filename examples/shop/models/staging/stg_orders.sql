select
    order_id,
    customer_id,
    ordered_on,
    lower(status) as status,
    lower(status) in ('placed', 'shipped', 'delivered') as is_revenue
from {{ ref('orders') }}
