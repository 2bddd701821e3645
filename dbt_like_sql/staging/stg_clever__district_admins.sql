{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'district_admins')) }}
),

final as (
    select
        district_id,
        id as user_id,
        district as clever_district_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(title), '') as title
    from source
)

select * from final
