{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'teachers')) }}
),

final as (
    select
        district_id,
        id as teacher_id,
        district as clever_district_id,
        school as school_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(last_name), '') as last_name,
        email as email_raw,
        nullif(trim(sis_id), '') as sis_id,
        nullif(trim(state_id), '') as state_id,
        nullif(trim(title), '') as title
    from source
)

select * from final
