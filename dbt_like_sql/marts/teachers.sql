with teachers as (
    select * from {{ ref('int_teachers__classified') }}
    where district_id = {{ district_id() }} and exclusion_reason is null
),

final as (
    select
        district_id, teacher_id, school_id, first_name, last_name, email, sis_id, state_id, title
    from teachers
)

select * from final
