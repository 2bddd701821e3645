{{ config(materialized='view') }}
with numbered as (
    select
        *,
        row_number() over (partition by district_id, id order by last_modified desc nulls last) as copy_number
    from {{ source('clever', 'sections') }}
),

source as (
    -- An id served twice (within a page or across pages) keeps one row.
    select * from numbered where copy_number = 1
),

final as (
    select
        district_id,
        id as section_id,
        district as clever_district_id,
        school as school_id,
        nullif(trim(name), '') as name,
        nullif(trim(period), '') as period,
        grade as grade_raw,
        subject as subject_raw,
        course as course_id,
        term_id,
        teacher as teacher_id,
        nullif(trim(sis_id), '') as sis_id
    from source
)

select * from final
