-- Demographics of kept students, with Clever's free-text flags read as booleans (macros/clever_values.sql).
-- A district that shares no demographics (no student carries any: the roster step's
-- `demographics_shared` parameter) gets no rows; rejected_records says DEMOGRAPHICS_NOT_SHARED.
with students as ({{ district_slice(ref('int_students__classified'),
                                   where='exclusion_reason is null and ' ~ changed('student', 'student_id')) }}),

frl as (
    select
        students.*,
        {{ frl_value('frl_status') }} as frl_normalized
    from students
    where {{ param('demographics_shared') }} = 'yes'
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
