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

classified as (
    select
        schools.*,
        low.grade as low_grade,
        high.grade as high_grade,
        case
            when schools.clever_district_id is not null and schools.clever_district_id <> schools.district_id
                then 'DISTRICT_MISMATCH'
            when not (not exists (select 1 from scope) or schools.school_id in (select school_id from scope))
                then 'SCHOOL_NOT_IN_SCOPE'
        end as exclusion_reason
    from schools
    left join grades as low on low.clever_value = schools.low_grade_raw
    left join grades as high on high.clever_value = schools.high_grade_raw
),

final as (
    select classified.*, exclusion_reason is null as in_scope from classified
)

select * from final
