select
    customer_id,
    first_name,
    last_name,
    first_name || ' ' || last_name as full_name,
    lower(email) as email,
    upper(country_code) as country_code,
    signed_up_on
from {{ ref('customers') }}
