{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by last_modified desc nulls last) as copy_number
    from {{ source('clever', 'staff') }}
),

source as (
    -- An id served twice (within a page or across pages) keeps one row.
    select * from numbered where copy_number = 1
),

final as (
    select
        district_id,
        id as user_id,
        district as clever_district_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        nullif(lower(trim(email)), '') as email,
        nullif(trim(title), '') as title,
        schools as school_ids
    from source
)

select * from final
