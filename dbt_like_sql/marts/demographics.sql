with students as ({{ district_slice(ref('int_students__classified'),
                                   where='exclusion_reason is null and ' ~ changed('student', 'student_id')) }}),

frl as (
    select
        students.*,
        case lower(trim(frl_status))
            when 'free' then 'free' when 'reduced' then 'reduced'
            when 'paid' then 'paid' when 'other' then 'other'
        end as frl_normalized
    from students
),

final as (
    select
        district_id,
        student_id,
        {{ yes_no('iep_status') }} as special_education,
        frl_normalized as frl_status,
        case frl_normalized when 'free' then true when 'reduced' then true when 'paid' then false end as frl_eligible,
        {{ yes_no('ell_status') }} as ell,
        {{ yes_no('section_504_status') }} as section_504,
        {{ yes_no('gifted_status') }} as gifted,
        home_language
    from frl
)

select * from final
