-- Administrators: staff users become school admins (one row per school they serve),
-- district_admin users district admins; staff of out-of-scope schools are excluded.
with staff as ({{ district_slice(ref('stg_clever__staff')) }}),
schools as ({{ district_slice(ref('int_schools__scoped'), columns='school_id, in_scope') }}),

staff_schools as (
    select
        district_id, user_id, first_name, last_name, email, title,
        {{ json_list_elements('school_ids') }} as school_id
    from staff
),

staff_without_school as (
    select district_id, user_id, first_name, last_name, email, title, cast(null as varchar) as school_id
    from staff
    where {{ json_list_length('school_ids') }} = 0
),

school_admins as (
    select
        candidates.district_id, candidates.user_id, 'school_admin' as role, candidates.school_id,
        candidates.first_name, candidates.last_name, candidates.email, candidates.title,
        case
            when candidates.school_id is not null and coalesce(schools.in_scope, false) = false
                then 'SCHOOL_NOT_IN_SCOPE'
        end as exclusion_reason
    from (select * from staff_schools union all select * from staff_without_school) as candidates
    left join schools on schools.school_id = candidates.school_id
),

district_admins as (
    select
        district_id, user_id, 'district_admin' as role, cast(null as varchar) as school_id,
        first_name, last_name, email, title, cast(null as varchar) as exclusion_reason
    from {{ ref('stg_clever__district_admins') }}
    where district_id = {{ district_id() }}
),

final as (
    select * from school_admins
    union all
    select * from district_admins
)

select * from final
