{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'courses'), newest_first=none) }}
),

final as (
    select
        district_id,
        id as course_id,
        nullif(trim(name), '') as name,
        nullif(trim(number), '') as number
    from source
)

select * from final
