{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'terms'), newest_first=none) }}
),

final as (
    select
        district_id,
        id as term_id,
        nullif(trim(name), '') as name,
        nullif(trim(start_date), '') as start_date,
        nullif(trim(end_date), '') as end_date
    from source
)

select * from final
