{{ config(materialized='view') }}
with source as (
    -- An id served twice (within a page or across pages) keeps its newest copy.
    {{ dedupe(source('clever', 'students')) }}
),

final as (
    select
        district_id,
        id as student_id,
        district as clever_district_id,
        school as school_id,
        nullif(trim(first_name), '') as first_name,
        nullif(trim(middle_name), '') as middle_name,
        nullif(trim(last_name), '') as last_name,
        email as email_raw,
        dob as dob_raw,
        grade as grade_raw,
        nullif(trim(gender), '') as gender,
        nullif(trim(sis_id), '') as sis_id,
        nullif(trim(state_id), '') as state_id,
        nullif(trim(student_number), '') as student_number,
        nullif(trim(race), '') as race,
        nullif(trim(hispanic_ethnicity), '') as hispanic_ethnicity,
        ell_status,
        frl_status,
        iep_status,
        section_504_status,
        gifted_status,
        nullif(trim(home_language), '') as home_language
    from source
)

select * from final
