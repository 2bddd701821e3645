with source as ({{ dedupe(source('clever', 'students')) }}),  -- an id served twice keeps its newest copy

final as (
    select {{ clever_ids('student_id') }}, school as school_id, {{ trimmed('first_name', 'middle_name', 'last_name') }},
        email as email_raw, dob as dob_raw, grade as grade_raw,
        {{ trimmed('gender', 'sis_id', 'state_id', 'student_number', 'race', 'hispanic_ethnicity') }},
        -- the v3.1 demographics, as sent (demographics.sql reads them)
        ell_status, frl_status, iep_status, section_504_status, gifted_status, {{ trimmed('home_language') }}
    from source
)

select * from final
