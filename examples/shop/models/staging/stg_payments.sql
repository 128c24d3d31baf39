select
    payment_id,
    order_id,
    lower(payment_method) as payment_method,
    amount_cents,
    {{ shop_utils.cents_to_currency('amount_cents') }} as amount,
    paid_on
from {{ ref('payments') }}
