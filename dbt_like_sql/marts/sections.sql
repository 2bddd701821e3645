with sections as ({{ district_slice(ref('int_sections__classified'),
                                   where='exclusion_reason is null and ' ~ changed('section', 'section_id')) }}),

final as (
    select
        district_id, section_id, school_id, name, section_number, period, subject,
        cast(grade as integer) as grade, course_name, term_name, teacher_id,
        teacher_from_list
    from sections
)

select * from final
