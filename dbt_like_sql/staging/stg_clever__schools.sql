{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'schools')) }}
),

final as (
    select
        district_id,
        id as school_id,
        district as clever_district_id,
        nullif(trim(name), '') as name,
        nullif(trim(sis_id), '') as sis_id,
        nullif(trim(state_id), '') as state_id,
        nullif(trim(nces_id), '') as nces_id,
        nullif(trim(low_grade), '') as low_grade_raw,
        nullif(trim(high_grade), '') as high_grade_raw
    from source
)

select * from final
