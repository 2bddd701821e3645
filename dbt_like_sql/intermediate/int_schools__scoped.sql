-- Schools with the district's scope applied: with no scope list, every shared school is in scope.
with schools as (
    select * from {{ ref('stg_clever__schools') }}
    where district_id = {{ district_id() }}
),

scope as (
    select school_id from {{ ref('rules_school_scope') }}
    where district_id = {{ district_id() }}
),

grades as (
    select clever_value, grade from {{ ref('rules_grades') }}
    where district_id = {{ district_id() }} and grade is not null
),

final as (
    select
        schools.*,
        low.grade as low_grade,
        high.grade as high_grade,
        (not exists (select 1 from scope) or schools.school_id in (select school_id from scope)) as in_scope
    from schools
    left join grades as low on low.clever_value = schools.low_grade_raw
    left join grades as high on high.clever_value = schools.high_grade_raw
)

select * from final
