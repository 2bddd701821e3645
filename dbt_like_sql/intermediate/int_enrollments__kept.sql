-- Section-student pairs where both the section and the student are kept (same district).
with pairs as (
    select distinct district_id, section_id, student_id from {{ ref('stg_clever__section_students') }}
    where district_id = {{ district_id() }}
),

sections as (
    select section_id from {{ ref('int_sections__classified') }}
    where district_id = {{ district_id() }} and exclusion_reason is null
),

students as (
    select student_id from {{ ref('int_students__classified') }}
    where district_id = {{ district_id() }} and exclusion_reason is null
),

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
