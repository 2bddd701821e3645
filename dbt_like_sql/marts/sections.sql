with sections as (
    select * from {{ ref('int_sections__classified') }}
    where district_id = {{ district_id() }} and exclusion_reason is null
),

final as (
    select
        district_id, section_id, school_id, name, period, subject,
        cast(grade as integer) as grade, course_name, term_name, teacher_id
    from sections
)

select * from final
