with teachers as ({{ district_slice(ref('int_teachers__classified'),
                                   where='exclusion_reason is null and ' ~ changed('teacher', 'teacher_id')) }}),

final as (
    select
        -- person_key: a re-issued id's row gets its person's first id before the checks
        district_id, teacher_id, teacher_id as person_key, school_id, first_name, last_name, email, sis_id, state_id, title
    from teachers
)

select * from final
