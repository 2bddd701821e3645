with students as ({{ district_slice(ref('int_students__classified'),
                                   where='exclusion_reason is null and ' ~ changed('student', 'student_id')) }}),

final as (
    select
        district_id,
        student_id,
        student_id as person_key,  -- a re-issued id's row gets its person's first id before the checks
        school_id,
        first_name,
        last_name,
        gender,
        case when dob_invalid then null else birth_date_parsed end as birth_date,
        state_id,
        sis_id,
        case when email_invalid then null else email_normalized end as email,
        cast(grade as integer) as grade,
        race,
        hispanic_ethnicity
    from students
)

select * from final
