-- The incremental fct_daily_revenue must agree with a full recount from
-- fct_orders, on every day. Catches a broken is_incremental() window.
with recount as (
    select
        ordered_on as order_date,
        count(*) as order_count,
        coalesce(sum(order_total) filter (where is_revenue), 0) as gross_revenue
    from {{ ref('fct_orders') }}
    group by ordered_on
)

select
    coalesce(recount.order_date, daily.order_date) as order_date,
    recount.gross_revenue as expected_revenue,
    daily.gross_revenue as actual_revenue
from recount
full outer join {{ ref('fct_daily_revenue') }} as daily
    on daily.order_date = recount.order_date
where
    recount.order_date is null
    or daily.order_date is null
    or daily.order_count <> recount.order_count
    or daily.gross_revenue <> recount.gross_revenue
