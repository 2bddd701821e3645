{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by last_modified desc nulls last) as copy_number
    from {{ source('clever', 'schools') }}
),

source as (
    -- An id served twice (within a page or across pages) keeps one row.
    select * from numbered where copy_number = 1
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
