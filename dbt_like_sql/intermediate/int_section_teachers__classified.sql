-- Every teacher of each kept section, with why the link is left out of section_teachers (NULL:
-- published). Clever's list includes the primary teacher; a list that leaves it out (or an empty
-- list under Clever's `teacher`) still gets it, from int_sections__classified. A kept section's
-- primary is a kept teacher, or the section would be excluded; a co-teacher who is not one
-- (excluded by the rules, or not among the district's teachers) is left out with
-- SECTION_COTEACHER_EXCLUDED, and the section is published without them.
with sections as ({{ district_slice(ref('int_sections__classified'), columns='district_id, section_id, school_id, teacher_id',
                                   where='exclusion_reason is null and ' ~ changed('section', 'section_id')) }}),
listed as ({{ district_slice(ref('stg_clever__section_teachers'), columns='distinct section_id, teacher_id',
                             where='teacher_id is not null and ' ~ changed('section', 'section_id')) }}),
teachers as ({{ district_slice(ref('int_teachers__classified'), columns='teacher_id, exclusion_reason',
                               where='teacher_id is not null') }}),

links as (
    select district_id, section_id, school_id, teacher_id, true as is_primary
    from sections
    union all
    select sections.district_id, sections.section_id, sections.school_id, listed.teacher_id, false as is_primary
    from sections
    inner join listed on listed.section_id = sections.section_id and listed.teacher_id <> sections.teacher_id
),

final as (
    select
        links.*,
        teachers.exclusion_reason as teacher_exclusion_reason,
        case when teachers.teacher_id is null or teachers.exclusion_reason is not null
            then 'SECTION_COTEACHER_EXCLUDED' end as exclusion_reason
    from links
    left join teachers on teachers.teacher_id = links.teacher_id
)

select * from final
