-- Schools with the district's scope applied: with no scope list, every shared school is in scope.
with schools as ({{ district_slice(ref('stg_clever__schools')) }}),
scope as ({{ district_slice(ref('rules_school_scope'), columns='school_id') }}),
grades as ({{ district_slice(ref('rules_grades'), columns='clever_value, grade', where='grade is not null') }}),

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
