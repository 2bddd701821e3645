{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by last_modified desc nulls last) as copy_number
    from {{ source('clever', 'teachers') }}
),

source as (
    -- An id served twice (within a page or across pages) keeps one row.
    select * from numbered where copy_number = 1
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
