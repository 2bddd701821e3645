with links as ({{ district_slice(ref('int_section_teachers__classified'),
                                where='exclusion_reason is null and ' ~ changed('section', 'section_id')) }}),

final as (
    select district_id, school_id, section_id, teacher_id, is_primary
    from links
)

select * from final
