with enrollments as ({{ district_slice(ref('int_enrollments__kept'),
                                      where=changed('section', 'section_id') ~ ' or ' ~ changed('student', 'student_id')) }}),
sections as ({{ district_slice(ref('int_sections__classified'), where='exclusion_reason is null') }}),
teachers as ({{ district_slice(ref('int_teachers__classified'), where='exclusion_reason is null') }}),

final as (
    select
        enrollments.district_id,
        sections.school_id,
        enrollments.section_id,
        enrollments.student_id,
        sections.teacher_id,
        sections.name as period_name,
        sections.subject,
        cast(sections.grade as integer) as grade,
        teachers.first_name as teacher_first_name,
        teachers.last_name as teacher_last_name,
        teachers.email as teacher_email
    from enrollments
    inner join sections on sections.section_id = enrollments.section_id
    inner join teachers on teachers.teacher_id = sections.teacher_id
)

select * from final
