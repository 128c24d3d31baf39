-- Every order that was not cancelled must be paid in full, and cancelled
-- orders must not have been charged. Returns the offending orders.
select
    order_id,
    status,
    order_total,
    amount_paid
from {{ ref('fct_orders') }}
where
    (status <> 'cancelled' and amount_paid <> order_total)
    or (status = 'cancelled' and amount_paid <> 0)
