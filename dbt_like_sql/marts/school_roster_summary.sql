-- One row per school in scope: what was loaded and what was excluded, for the school liaison
-- who confirms the roster.
with schools as ({{ district_slice(ref('int_schools__scoped'), where='in_scope') }}),
students as ({{ district_slice(ref('int_students__classified'), columns='school_id, grade, exclusion_reason') }}),
teachers as ({{ district_slice(ref('int_teachers__classified'), columns='school_id', where='exclusion_reason is null') }}),
sections as ({{ district_slice(ref('int_sections__classified'), columns='school_id, section_id, exclusion_reason') }}),

enrollments as (
    select sections.school_id
    from {{ ref('int_enrollments__kept') }} as kept
    inner join sections on sections.section_id = kept.section_id
    where kept.district_id = {{ district_id() }}
),

student_counts as (
    select
        school_id,
        count(*) filter (where exclusion_reason is null) as students,
        count(*) filter (where exclusion_reason is not null) as excluded_students,
{%- for grade in range(13) %}
        count(*) filter (where exclusion_reason is null and grade = {{ grade }}) as students_grade_{{ 'k' if grade == 0 else grade }},
{%- endfor %}
        count(*) filter (where exclusion_reason is null and (grade < 0 or grade > 12)) as students_other_grades
    from students
    group by school_id
),

teacher_counts as (
    select school_id, count(*) as teachers from teachers group by school_id
),

section_counts as (
    select
        school_id,
        count(*) filter (where exclusion_reason is null) as sections,
        count(*) filter (where exclusion_reason is not null) as excluded_sections
    from sections
    group by school_id
),

enrollment_counts as (
    select school_id, count(*) as enrollments from enrollments group by school_id
),

final as (
    select
        schools.district_id,
        schools.school_id,
        schools.name,
        coalesce(student_counts.students, 0) as students,
        coalesce(teacher_counts.teachers, 0) as teachers,
        coalesce(section_counts.sections, 0) as sections,
        coalesce(enrollment_counts.enrollments, 0) as enrollments,
        coalesce(student_counts.excluded_students, 0) as excluded_students,
        coalesce(section_counts.excluded_sections, 0) as excluded_sections,
{%- for grade in range(13) %}
        coalesce(student_counts.students_grade_{{ 'k' if grade == 0 else grade }}, 0) as students_grade_{{ 'k' if grade == 0 else grade }},
{%- endfor %}
        coalesce(student_counts.students_other_grades, 0) as students_other_grades
    from schools
    left join student_counts on student_counts.school_id = schools.school_id
    left join teacher_counts on teacher_counts.school_id = schools.school_id
    left join section_counts on section_counts.school_id = schools.school_id
    left join enrollment_counts on enrollment_counts.school_id = schools.school_id
)

select * from final
