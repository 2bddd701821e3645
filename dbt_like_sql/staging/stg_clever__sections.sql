{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'sections')) }}
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
