-- Section-student pairs where both the section and the student are kept (same district).
with pairs as ({{ district_slice(ref('stg_clever__section_students'), columns='distinct district_id, section_id, student_id',
                                where=changed('section', 'section_id') ~ ' or ' ~ changed('student', 'student_id')) }}),
sections as ({{ district_slice(ref('int_sections__classified'), columns='section_id', where='exclusion_reason is null') }}),
students as ({{ district_slice(ref('int_students__classified'), columns='student_id', where='exclusion_reason is null') }}),

final as (
    select
        pairs.district_id,
        pairs.section_id,
        pairs.student_id
    from pairs
    inner join sections on sections.section_id = pairs.section_id
    inner join students on students.student_id = pairs.student_id
)

select * from final
